"""scikit-learn's own conformance suite (check_estimator of Debian's
scikit-learn 1.2) on both estimators, one pytest case per check.

No check may be skipped: a check that raises SkipTest, or warns
SkipTestWarning, fails here. (Checks needing pandas run because
python3-pandas is installed by scripts/install-deps.sh; Debian 12 has
every package scikit-learn 1.2's checks use.)
"""

import warnings

import pytest
import sklearn
from sklearn.exceptions import SkipTestWarning
from sklearn.utils.estimator_checks import check_estimator

from vmfmm import VonMisesFisherClassifier, VonMisesFisherMixture

ESTIMATORS = [VonMisesFisherMixture(), VonMisesFisherClassifier()]
CHECKS = [(est, check) for base in ESTIMATORS
          for est, check in check_estimator(base, generate_only=True)]


def _name(check):
    return getattr(check, "func", check).__name__


def test_debian_scikit_learn_1_2():
    assert sklearn.__version__.startswith("1.2")


def test_enough_checks_run():
    names = {(type(e).__name__, _name(c)) for e, c in CHECKS}
    assert len(names) >= 65
    for required in ("check_estimators_pickle", "check_fit_idempotent",
                     "check_methods_subset_invariance", "check_n_features_in",
                     "check_estimators_dtypes", "check_estimators_nan_inf"):
        assert ("VonMisesFisherMixture", required) in names
    assert ("VonMisesFisherClassifier", "check_classifiers_train") in names
    assert ("VonMisesFisherClassifier", "check_classifiers_classes") in names
    # runs with pandas frames (python3-pandas), which would otherwise skip
    assert ("VonMisesFisherClassifier", "check_classifier_data_not_an_array") in names


@pytest.mark.parametrize("estimator, check", CHECKS,
                         ids=[f"{type(e).__name__}-{_name(c)}" for e, c in CHECKS])
def test_check(estimator, check):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkipTestWarning)
        try:
            check(estimator)
        except Exception as e:  # SkipTest derives from Exception
            if type(e).__name__ == "SkipTest":
                pytest.fail(f"{_name(check)} skipped: {e}")
            raise
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkipTestWarning)]
    assert not skipped, skipped
