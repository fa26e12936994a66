"""GauGAN's SPADE generator (NVlabs/SPADE, models/networks/generator.py and
architecture.py) in plain PyTorch, at the configuration `sige bench --model
gaugan` builds: ngf 64, 35 labels + instance edges, 256x512, "more"
upsampling (6 layers), BatchNorm param-free norm with running statistics,
no spectral norm (plain `.weight` keys), eval mode.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SPADE(nn.Module):
    def __init__(self, norm_nc, label_nc, nhidden=128):
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, 3, padding=1)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin, fout, semantic_nc, nhidden):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, semantic_nc, nhidden)
        self.norm_1 = SPADE(fmiddle, semantic_nc, nhidden)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, semantic_nc, nhidden)

    def forward(self, x, seg):
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 2e-1))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 2e-1))
        return x_s + dx


class SPADEGenerator(nn.Module):
    def __init__(self, ngf=64, label_nc=35, contain_instance=True, crop_size=512,
                 aspect_ratio=2.0, num_upsampling_layers=6):
        super().__init__()
        nf, semantic_nc = ngf, label_nc + (1 if contain_instance else 0)
        self.nul = num_upsampling_layers
        self.sw = crop_size // 2**num_upsampling_layers
        self.sh = round(self.sw / aspect_ratio)
        self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)
        blk = lambda fin, fout: SPADEResnetBlock(fin, fout, semantic_nc, 2 * nf)
        self.head_0 = blk(16 * nf, 16 * nf)
        self.G_middle_0 = blk(16 * nf, 16 * nf)
        self.G_middle_1 = blk(16 * nf, 16 * nf)
        self.up_0 = blk(16 * nf, 8 * nf)
        self.up_1 = blk(8 * nf, 4 * nf)
        self.up_2 = blk(4 * nf, 2 * nf)
        self.up_3 = blk(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == 7:
            self.up_4 = blk(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def forward(self, seg):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        x = self.fc(F.interpolate(seg, size=(self.sh, self.sw)))
        x = self.head_0(x, seg)
        x = self.G_middle_0(up(x), seg)
        if self.nul >= 6:  # "more" and "most" upsample once more here
            x = up(x)
        x = self.G_middle_1(x, seg)
        for name in ["up_0", "up_1", "up_2", "up_3"] + (["up_4"] if self.nul == 7 else []):
            x = getattr(self, name)(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 2e-1)))
