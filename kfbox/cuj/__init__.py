"""The Critical User Journey as pytest suites: one test per step, profile markers, a runner."""
