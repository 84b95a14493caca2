"""Host plumbing, the bottom layer: config, preflight, provisioning, images, the Docker
connection, locks, state files, disk, paths, progress, errors, redaction and GPU detection."""
