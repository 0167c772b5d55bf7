"""utils.py of the course's skeleton: a running average and top-1 accuracy."""


class AverageMeter:
    """Keeps the running average of a quantity over the samples seen."""

    def __init__(self, name, fmt=":f"):
        self.name = name
        self.fmt = fmt
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count

    def __str__(self):
        fmtstr = "{name} {val" + self.fmt + "} ({avg" + self.fmt + "})"
        return fmtstr.format(**self.__dict__)


def accuracy(output, target):
    """Fraction of the rows of ``output`` whose largest entry is at ``target``."""
    predicted = output.argmax(dim=1)
    return (predicted == target).float().mean().item()
