"""Applications built on the harness and the engines: workshops, bench, offline bundles."""
