"""Write the model zoo's workload files from the networks' published layer tables.

    python specs/workloads/_generate.py

The YAML files it writes are what ships and what users read; this script is how they
were made, and tests/test_zoo.py checks that they still say what it writes. Layers are
conv (FC layers of CNNs too, as convolutions over their whole input, as the Eyeriss
papers write them), linear and matmul, in the native format of mapper/specs/native.
Only layers with multiply-accumulates are listed: pooling, activations, normalization,
residual additions and biases are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil
from pathlib import Path

HERE = Path(__file__).resolve().parent
Layer = tuple[str, dict[str, int | str]]


@dataclass
class Network:
    file: str
    name: str
    header: str
    layers: list[Layer] = field(default_factory=list)
    inputs: dict[str, list[str]] = field(default_factory=dict)  # layer -> the layers whose outputs it reads

    def reads(self, layer: str, producers: list[str]) -> None:
        """`layer` reads the outputs of `producers` (none: the network's input); summed
        by a residual connection or concatenated, they are all its producers."""
        self.inputs[layer] = list(producers)

    def conv(self, name: str, C: int, M: int, H: int, R: int, stride: int = 1, padding: int = 0,
             groups: int = 1) -> int:
        """A square convolution; returns its output size, the next layer's H."""
        fields: dict[str, int | str] = {"name": name, "C": C, "M": M, "H": H, "W": H, "R": R, "S": R}
        defaults = {"stride": 1, "padding": 0, "groups": 1}
        given = {"stride": stride, "padding": padding, "groups": groups}
        fields |= {k: v for k, v in given.items() if v != defaults[k]}
        self.layers.append(("conv", fields))
        return (H + 2 * padding - R) // stride + 1

    def fc(self, name: str, C: int, M: int, H: int = 1) -> None:
        """A fully connected layer over an H x H x C input: a convolution with R = H."""
        self.conv(name, C, M, H, H)

    def matmul(self, kind: str, name: str, **dims: int) -> None:
        self.layers.append((kind, {"name": name, **dims}))

    def yaml(self) -> str:
        lines = [f"# {line}".rstrip() for line in self.header.strip("\n").split("\n")]
        lines += ["# Written by specs/workloads/_generate.py.", "workload:", f"  name: {self.name}", "  layers:"]
        for kind, fields in self.layers:
            lines.append(f"    - {kind}: {{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}")
        if self.inputs:
            lines.append("  inputs:  # the layers whose outputs each layer reads (summed or concatenated)")
            lines += [f"    {layer}: [" + ", ".join(producers) + "]" for layer, producers in self.inputs.items()]
        return "\n".join(lines) + "\n"


def lenet5() -> Network:
    net = Network("lenet5.yaml", "lenet5", """
LeNet-5, batch 1, on a 32 x 32 image.
Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to
Document Recognition", Proc. IEEE 86(11), 1998, Sec. II.B and Table I.
C3 connects each of its 16 maps to only some of S2's 6 maps (Table I): 6 maps read 3,
9 maps read 4, 1 map reads all 6. It is written as three dense convolutions grouped by
that fan-in, over the maps each group reads: the MACs and weights are exact; the
Inputs of the first two stand for the different map subsets of their output maps.
The output layer's units are Euclidean RBFs, sum of (x - w)^2 over 84 inputs: one
multiply-accumulate per weight, written as a 1 x 1 convolution.
LeCun counts 340,908 connections and 60,000 trainable parameters: add the biases and
the subsampling layers S2/S4 and drop the RBF's fixed weights (README, Workloads).""")
    h = net.conv("c1", 1, 6, 32, 5)
    h //= 2  # S2
    net.conv("c3_from_3_maps", 3, 6, h, 5)
    net.conv("c3_from_4_maps", 4, 9, h, 5)
    h = net.conv("c3_from_6_maps", 6, 1, h, 5)
    h //= 2  # S4
    net.conv("c5", 16, 120, h, 5)
    net.fc("f6", 120, 84)
    net.fc("output", 84, 10)
    c3 = ["c3_from_3_maps", "c3_from_4_maps", "c3_from_6_maps"]
    for group in c3:
        net.reads(group, ["c1"])  # each a subset of S2's maps
    net.reads("c5", c3)  # the 16 maps of C3 together
    return net


def alexnet() -> Network:
    net = Network("alexnet.yaml", "alexnet", """
AlexNet, batch 1, with the original two groups in conv2, conv4 and conv5 (C and M are
the layer's total channels), as the Eyeriss papers use it: conv1 C3 M96 H227 R11 E55
stride 4; conv2 C48 (per group) M256 H31 R5 E27; conv3 C256 M384 H15 R3 E13; conv4
C192 (per group) M384; conv5 C192 (per group) M256; fc6 6 x 6 x 256 -> 4096;
fc7 4096 -> 4096; fc8 4096 -> 1000.
Source: A. Krizhevsky, I. Sutskever, G. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012 (227 x 227 input, as in Caffe's reference
model); Y.-H. Chen et al., "Eyeriss", ISCA 2016 / JSSC 2017 (the shapes above).""")
    h = net.conv("conv1", 3, 96, 227, 11, stride=4)
    h = (h - 3) // 2 + 1  # max pool 3 x 3, stride 2: 55 -> 27
    h = net.conv("conv2", 96, 256, h, 5, padding=2, groups=2)
    h = (h - 3) // 2 + 1  # 27 -> 13
    h = net.conv("conv3", 256, 384, h, 3, padding=1)
    h = net.conv("conv4", 384, 384, h, 3, padding=1, groups=2)
    h = net.conv("conv5", 384, 256, h, 3, padding=1, groups=2)
    h = (h - 3) // 2 + 1  # 13 -> 6
    net.fc("fc6", 256, 4096, h)
    net.fc("fc7", 4096, 4096)
    net.fc("fc8", 4096, 1000)
    return net


def vgg16() -> Network:
    net = Network("vgg16.yaml", "vgg16", """
VGG-16 (configuration D), batch 1, on a 224 x 224 image: 13 convolutions of 3 x 3
(padding 1) in five stages separated by 2 x 2 max pooling, then three FC layers.
Source: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015, Table 1 (column D).""")
    h, c = 224, 3
    for stage, (channels, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, convs + 1):
            h = net.conv(f"conv{stage}_{i}", c, channels, h, 3, padding=1)
            c = channels
        h //= 2
    net.fc("fc6", 512, 4096, h)
    net.fc("fc7", 4096, 4096)
    net.fc("fc8", 4096, 1000)
    return net


# Inception modules of GoogLeNet: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(pooling_rounds_up: bool = True) -> Network:
    """The paper's network; with `pooling_rounds_up=False`, the variant whose stride-2
    max pooling rounds down (feature maps of 55, 27, 13, 6 instead of 56, 28, 14, 7),
    which is what the 1.43G MACs often quoted for GoogLeNet count."""
    net = Network("googlenet.yaml", "googlenet", """
GoogLeNet (Inception v1), batch 1, on a 224 x 224 image, without the auxiliary
classifiers (training only). Each inception module is six convolutions: 1x1; 3x3
reduce and 3x3; 5x5 reduce and 5x5; the 1x1 projection after 3 x 3 max pooling.
The stride-2 max pooling rounds up (as in the paper and Caffe): 112, 56, 28, 14, 7.
Source: C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Table 1.""")
    pooling_round = ceil if pooling_rounds_up else int

    def max_pool(h: int) -> int:  # 3 x 3, stride 2
        return pooling_round((h - 3) / 2) + 1

    h = net.conv("conv1_7x7_s2", 3, 64, 224, 7, stride=2, padding=3)
    h = max_pool(h)
    h = net.conv("conv2_3x3_reduce", 64, 64, h, 1)
    h = net.conv("conv2_3x3", 64, 192, h, 3, padding=1)
    c, source = 192, ["conv2_3x3"]
    for module, (n1, r3, n3, r5, n5, proj) in INCEPTION.items():
        if module in ("3a", "4a", "5a"):
            h = max_pool(h)
        name = f"inception_{module}"
        net.conv(f"{name}_1x1", c, n1, h, 1)
        net.conv(f"{name}_3x3_reduce", c, r3, h, 1)
        net.conv(f"{name}_3x3", r3, n3, h, 3, padding=1)
        net.conv(f"{name}_5x5_reduce", c, r5, h, 1)
        net.conv(f"{name}_5x5", r5, n5, h, 5, padding=2)
        net.conv(f"{name}_pool_proj", c, proj, h, 1)
        for head in ("1x1", "3x3_reduce", "5x5_reduce", "pool_proj"):
            net.reads(f"{name}_{head}", source)
        net.reads(f"{name}_3x3", [f"{name}_3x3_reduce"])
        net.reads(f"{name}_5x5", [f"{name}_5x5_reduce"])
        c, source = n1 + n3 + n5 + proj, [f"{name}_{tail}" for tail in ("1x1", "3x3", "5x5", "pool_proj")]
    net.fc("loss3_classifier", c, 1000)
    net.reads("loss3_classifier", source)  # the last module's concatenation
    return net


def resnet50() -> Network:
    net = Network("resnet50.yaml", "resnet50", """
ResNet-50, batch 1, on a 224 x 224 image: bottleneck blocks of 1x1, 3x3, 1x1
convolutions (Caffe names: res2a_branch2a ...), with a 1x1 projection (branch1) on the
first block of each stage. As in the original model, a stage's stride 2 is on the
first 1x1 convolution and the projection (torchvision's "v1.5" moves it to the 3x3,
which costs 4.1G instead of 3.9G MACs).
Source: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, Table 1; the authors' released Caffe model.""")
    h = net.conv("conv1", 3, 64, 224, 7, stride=2, padding=3)
    h = (h + 2 - 3) // 2 + 1  # max pool 3 x 3, stride 2, padding 1: 112 -> 56
    c, source = 64, ["conv1"]  # source: the layers whose outputs sum to the block's input
    for stage, (blocks, mid, out, stride) in enumerate([(3, 64, 256, 1), (4, 128, 512, 2),
                                                         (6, 256, 1024, 2), (3, 512, 2048, 2)], start=2):
        for b in range(blocks):
            name, s = f"res{stage}{'abcdef'[b]}", stride if b == 0 else 1
            if b == 0:
                net.conv(f"{name}_branch1", c, out, h, 1, stride=s)
                net.reads(f"{name}_branch1", source)
            h2 = net.conv(f"{name}_branch2a", c, mid, h, 1, stride=s)
            net.conv(f"{name}_branch2b", mid, mid, h2, 3, padding=1)
            h = net.conv(f"{name}_branch2c", mid, out, h2, 1)
            net.reads(f"{name}_branch2a", source)
            net.reads(f"{name}_branch2b", [f"{name}_branch2a"])
            net.reads(f"{name}_branch2c", [f"{name}_branch2b"])
            # the block's output: branch2c plus the projection (first block) or the block's input
            shortcut = [f"{name}_branch1"] if b == 0 else source
            source = shortcut + [f"{name}_branch2c"]
            c = out
    net.fc("fc1000", c, 1000)
    net.reads("fc1000", source)
    return net


def make_divisible(value: float, divisor: int = 8) -> int:
    """Channel counts rounded to a multiple of 8, never more than 10% down (the
    reference implementations of MobileNetV3 and EfficientNet)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def inverted_residual(net: Network, name: str, c_in: int, expanded: int, c_out: int, h: int, kernel: int,
                      stride: int, squeeze: int | None, source: list[str]) -> tuple[int, list[str]]:
    """MBConv / bneck: 1x1 expansion (absent when it would not expand), depthwise
    k x k, squeeze-and-excitation (two FC layers on the pooled channels, whose output
    scales the depthwise one), 1x1 projection; the block's input added to its output
    where their shapes agree (stride 1, as many channels). `source`: the layers whose
    outputs make the block's input; returns the output size and the layers whose
    outputs make the block's output."""
    if expanded != c_in:
        net.conv(f"{name}_expand", c_in, expanded, h, 1)
        net.reads(f"{name}_expand", source)
    h_out = net.conv(f"{name}_depthwise", expanded, expanded, h, kernel, stride=stride, padding=(kernel - 1) // 2,
                     groups=expanded)
    net.reads(f"{name}_depthwise", [f"{name}_expand"] if expanded != c_in else source)
    scaled = [f"{name}_depthwise"]
    if squeeze is not None:
        net.fc(f"{name}_se_reduce", expanded, squeeze)
        net.fc(f"{name}_se_expand", squeeze, expanded)
        net.reads(f"{name}_se_reduce", [f"{name}_depthwise"])
        net.reads(f"{name}_se_expand", [f"{name}_se_reduce"])
        scaled.append(f"{name}_se_expand")
    net.conv(f"{name}_project", expanded, c_out, h_out, 1)
    net.reads(f"{name}_project", scaled)
    residual = source if stride == 1 and c_in == c_out else []
    return h_out, residual + [f"{name}_project"]


# MobileNetV3-Large bnecks: kernel, expansion size, output channels, SE, stride.
MOBILENETV3_LARGE = [
    (3, 16, 16, False, 1), (3, 64, 24, False, 2), (3, 72, 24, False, 1), (5, 72, 40, True, 2),
    (5, 120, 40, True, 1), (5, 120, 40, True, 1), (3, 240, 80, False, 2), (3, 200, 80, False, 1),
    (3, 184, 80, False, 1), (3, 184, 80, False, 1), (3, 480, 112, True, 1), (3, 672, 112, True, 1),
    (5, 672, 160, True, 2), (5, 960, 160, True, 1), (5, 960, 160, True, 1),
]


def mobilenetv3_large() -> Network:
    net = Network("mobilenetv3-large.yaml", "mobilenetv3_large", """
MobileNetV3-Large (width 1.0), batch 1, on a 224 x 224 image: a 3 x 3 stem, 15
bottlenecks (1x1 expansion, depthwise k x k, optional squeeze-and-excitation of
expansion/4 channels rounded to a multiple of 8, 1x1 projection), a 1x1 convolution
to 960, and the classifier's two FC layers (960 -> 1280 -> 1000) after pooling.
Source: A. Howard et al., "Searching for MobileNetV3", ICCV 2019, Table 1 (the paper
reports 219M multiply-adds and 5.4M parameters, biases and batch norm included).""")
    h = net.conv("stem", 3, 16, 224, 3, stride=2, padding=1)
    c, source = 16, ["stem"]
    for i, (kernel, expanded, out, se, stride) in enumerate(MOBILENETV3_LARGE, start=1):
        squeeze = make_divisible(expanded / 4) if se else None
        h, source = inverted_residual(net, f"bneck{i}", c, expanded, out, h, kernel, stride, squeeze, source)
        c = out
    net.conv("last_conv", c, 960, h, 1)
    net.reads("last_conv", source)
    net.fc("classifier_fc1", 960, 1280)
    net.fc("classifier_fc2", 1280, 1000)
    return net


# EfficientNet-B0 stages: expansion, kernel, stride, input and output channels, repeats.
EFFICIENTNET_B0 = [
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
]


def efficientnet_b4() -> Network:
    width, depth, resolution = 1.4, 1.8, 380
    net = Network("efficientnet-b4.yaml", "efficientnet_b4", f"""
EfficientNet-B4, batch 1, on a {resolution} x {resolution} image: EfficientNet-B0 scaled
to width {width} (channels rounded to multiples of 8) and depth {depth} (repeats rounded
up), 32 MBConv blocks, each with squeeze-and-excitation of a quarter of its input
channels; "same" padding; the head's 1x1 convolution and the FC classifier.
Source: M. Tan, Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks", ICML 2019, Table 1 and Sec. 4 (B4: 19M parameters); the authors'
reference implementation for the rounding.""")
    h = net.conv("stem", 3, make_divisible(32 * width), resolution, 3, stride=2, padding=1)
    c, source = make_divisible(32 * width), ["stem"]
    for stage, (expansion, kernel, stride, _, out, repeats) in enumerate(EFFICIENTNET_B0, start=1):
        out = make_divisible(out * width)
        for b in range(ceil(depth * repeats)):
            squeeze = max(1, int(c * 0.25))
            h, source = inverted_residual(net, f"block{stage}_{b + 1}", c, c * expansion, out, h, kernel,
                                          stride if b == 0 else 1, squeeze, source)
            c = out
    head = make_divisible(1280 * width)
    net.conv("head", c, head, h, 1)
    net.reads("head", source)
    net.fc("classifier", head, 1000)
    return net


def bert_base() -> Network:
    tokens, hidden, heads, ffn = 512, 768, 12, 3072
    net = Network("bert-base.yaml", "bert_base_layer", f"""
One BERT-base encoder layer at sequence length {tokens}, batch 1: hidden size {hidden},
{heads} heads of {hidden // heads}, feed-forward size {ffn}. The Q, K, V and output projections,
the two batched matmuls of attention, and the feed-forward pair.
`linear`: Inputs[M, K] x Weights[K, N] with M = tokens. `matmul` with B = heads
batches both operands: for attention, "Weights" is the second activation operand
(K^T, then V), so `mapper stats` counts no weights for it.
Source: J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep
Bidirectional Transformers for Language Understanding", NAACL 2019; A. Vaswani et al.,
"Attention Is All You Need", NeurIPS 2017 (the layer's structure).""")
    for projection in ("q", "k", "v"):
        net.matmul("linear", f"{projection}_projection", M=tokens, K=hidden, N=hidden)
        net.reads(f"{projection}_projection", [])  # the layer's input
    net.matmul("matmul", "attention_scores", B=heads, M=tokens, K=hidden // heads, N=tokens)
    net.matmul("matmul", "attention_values", B=heads, M=tokens, K=tokens, N=hidden // heads)
    net.matmul("linear", "output_projection", M=tokens, K=hidden, N=hidden)
    net.matmul("linear", "ffn_up", M=tokens, K=hidden, N=ffn)
    net.matmul("linear", "ffn_down", M=tokens, K=ffn, N=hidden)
    net.reads("attention_scores", ["q_projection", "k_projection"])
    net.reads("attention_values", ["attention_scores", "v_projection"])  # through the softmax
    net.reads("output_projection", ["attention_values"])
    net.reads("ffn_up", ["output_projection"])  # and the layer's input, through the residual sum
    net.reads("ffn_down", ["ffn_up"])
    return net


NETWORKS = (lenet5, alexnet, vgg16, googlenet, resnet50, mobilenetv3_large, efficientnet_b4, bert_base)


def main() -> None:
    for build in NETWORKS:
        net = build()
        (HERE / net.file).write_text(net.yaml())


if __name__ == "__main__":
    main()
