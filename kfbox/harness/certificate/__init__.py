"""The certificate's renderers and the results bundle: report.json, junit.xml, report.html and
logs/, written on every run; read back by `kfbox results`."""
