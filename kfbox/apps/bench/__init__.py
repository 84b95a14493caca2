"""`kfbox bench`: the figures kfbox's targets are about, measured in one run on this host and
reported beside their targets (never asserted: these machines are noisy, so ratios are taken
within one run), as a table or JSON, and compared with an earlier run's JSON.

Each measure runs on throwaway sandboxes of its own (free ports, their own names), so a user's
sandboxes are never touched."""
