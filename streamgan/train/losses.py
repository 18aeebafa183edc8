"""GAN losses (lsgan, vanilla, wgangp), the gradient penalty, and the image pool of past fakes."""

import numpy as np
import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "wgangp")


def gan_loss(pred: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    if mode == "lsgan":
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, 1.0 if real else 0.0))
    return -pred.mean() if real else pred.mean()


def gradient_penalty(netD, real: torch.Tensor, fake: torch.Tensor, rs: np.random.RandomState) -> torch.Tensor:
    alpha = torch.from_numpy(rs.rand(real.shape[0], 1, 1, 1).astype(np.float32)).to(real.device)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad = torch.autograd.grad(netD(x).sum(), x, create_graph=True)[0]
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class ImagePool:
    """Shrivastava et al.: half the time show the discriminator a stored past fake instead."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def query(self, images: torch.Tensor, rs: np.random.RandomState) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img[None]
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif rs.rand() > 0.5:
                j = int(rs.randint(self.size))
                out.append(self.images[j].clone())
                self.images[j] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)
