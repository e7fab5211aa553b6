"""Generation: the machinery (submitters, one poller, delivery workers), resume, error outcomes, figures."""
