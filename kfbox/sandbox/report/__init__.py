"""The conformance bundle: report.json, junit.xml, report.html and logs/, written on every run."""
