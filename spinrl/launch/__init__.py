"""Starting runs: the experiment grid, local processes and MPI jobs, the fork server, Ray, and run specs."""
