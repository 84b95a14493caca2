"""The conformance harness: profiles, the requirements they prove, the journey and its steps, the
pytest suites (`cuj/`), the plugin that records them (`plugin`), the runner, and the
certificate judged from the records. It talks to engines only through the engine seam
(`status`, `capabilities`, `platform`) and the platform seam; `kfbox.harness.certificate` only
renders what it recorded.
"""
