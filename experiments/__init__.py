"""The experiments: one runner per experiment and the data it reads, at this package's top.

    python -m experiments.palindrome --help        # Part I: one RNN or LSTM run on palindromes
    python -m experiments.gan --help               # Part II: the GAN on MNIST
    python -m experiments.study                    # everything: sweeps, classifier, GAN, figures, report

``palindrome.py``, ``gan.py`` and ``mnist_classifier.py`` are the runners; ``palindrome_data.py`` and
``mnist_data.py`` the data; ``variants.py`` the table of models and variants; ``rmsprop.py`` the optimiser;
``gan_metrics.py`` how the GAN is judged; ``study.py`` the whole study. What every runner shares: ``cli.py`` (flags,
one-line errors, Ctrl-C and SIGTERM), ``record.py`` (the run record), ``tracker.py`` (W&B + the record) and
``progress.py`` (a run's progress line). The sweep runner, which starts runs (local pool | W&B agents), is
``experiments/infra/``.
"""
