"""The product: CLI, config, preflight, provisioning, images, engines and the report."""
