from automates.cli.app import main

main()
