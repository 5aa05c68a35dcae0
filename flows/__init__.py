"""The built-in automates. Each module holds one flow; deployments/registry.yaml declares them."""
