"""steamwatch: the command line and the one-machine supervisor (`steamwatch dev`)."""
