"""The networks of the study: pure nn.Modules, no data loading, no logging, no argparse.

``models.rnn.RNN`` and ``models.lstm.LSTM`` (Part I) and ``models.gan`` (Part II).
"""
