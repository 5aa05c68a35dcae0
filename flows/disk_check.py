"""disk-space-check: free space where the layer writes, and logs that grow without bound.

An audit: low space and oversized logs are findings (state "Findings"), with the figures as an
artifact. Oversized logs in the data folder (server, worker, embedded PostgreSQL) are rotated
(the last tenth is kept in `<log>.1`) when `rotate_logs` is on.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from automates.settings import Settings
from tasks.disk import oversized_logs, rotate_log, volume_usage
from tasks.reporting import markdown_table, publish_markdown

MB = 1024 * 1024


@flow(name="disk-space-check")
def disk_space_check(
    min_free_percent: float = 10.0, max_log_mb: int = 100, rotate_logs: bool = True
) -> State:
    """Check free disk space and log sizes of the data folder.

    Args:
        min_free_percent: below this share of free space on a volume, report a finding.
        max_log_mb: a log file larger than this is a finding (and rotated if rotate_logs).
        rotate_logs: rotate oversized logs of the layer's own processes.
    """
    logger = get_run_logger()
    settings = Settings()
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    # One row per volume: the data folder and the checkout often share one.
    by_device = {p.stat().st_dev: p for p in (settings.project_root.resolve(), data.resolve())}
    volumes = [volume_usage(p) for p in by_device.values()]
    findings = [
        f"{v.path}: {v.free_percent:.1f}% free (< {min_free_percent}%)"
        for v in volumes
        if v.free_percent < min_free_percent
    ]
    logs = oversized_logs(data, max_log_mb * MB)
    freed = 0
    for log in logs:
        findings.append(f"{log['path']}: {log['bytes'] // MB} MB (> {max_log_mb} MB)")
        if rotate_logs:
            freed += rotate_log(Path(log["path"]), keep_bytes=max_log_mb * MB // 10)
    rows = [
        (v.path, f"{v.free_bytes / MB / 1024:.1f} GB", f"{v.free_percent:.1f}%") for v in volumes
    ]
    summary = f"{len(volumes)} volume(s), {len(logs)} oversized log(s), {freed // MB} MB freed"
    markdown = f"# Disk space\n\n{summary}.\n\n" + markdown_table(("path", "free", "free %"), rows)
    if findings:
        markdown += "\n\n## Findings\n\n" + "\n".join(f"- {f}" for f in findings)
    publish_markdown(key="disk-space-check", markdown=markdown, description=summary)
    data_out = {"volumes": [v.as_dict() for v in volumes], "findings": findings, "freed": freed}
    if findings:
        for finding in findings:
            logger.warning(finding)
        return Completed(name="Findings", message="; ".join(findings), data=data_out)
    logger.info(summary)
    return Completed(message=summary, data=data_out)
