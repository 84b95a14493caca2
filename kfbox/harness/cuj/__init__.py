"""The journey as pytest suites: each step of each variant's journey, and the component tests."""
