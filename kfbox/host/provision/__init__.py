"""Host provisioning: the ansible-runner wrapper and the playbooks/roles that prepare a host or VM
(Docker engine, inotify limits, the NVIDIA container toolkit on GPU hosts)."""
