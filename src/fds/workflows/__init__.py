"""Run-directory workflows (train, evaluate, report, probe): the layer between the CLI and the
estimator, so the CLI only parses and prints and the estimator knows nothing of run directories."""
