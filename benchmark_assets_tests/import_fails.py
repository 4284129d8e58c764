"""An estimator module that is found but cannot be imported (what a missing dependency does): the
study loads, and the estimator fails at run time with the import's error as data."""
raise ImportError("this estimator needs lightgbm, which is not installed")


def fit(train, test, options):  # never reached: the import fails first
    return None
