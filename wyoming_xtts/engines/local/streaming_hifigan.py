"""XTTS-v2's HiFi-GAN waveform decoder run as a stream: each layer computes each position once.

Decoding a sentence in pieces by re-running the decoder over a window (the new frames plus
enough frames of context on each side for its receptive field, ±13.4 frames) computes the
context again at every piece: 28 extra frames a piece, 13 % more than a 48-token piece's own
209 frames and 80 % more than an 8-token piece's 35. Here every layer keeps the few inputs
its next outputs still need (a convolution's halo, a residual branch's skipped input) and is
fed only what is new, so a piece costs what its own frames cost, and the pieces still join
into exactly the audio of one whole decode: each output is the same sum over the same
inputs.

Built from the generator's own layers (coqui-tts' `HifiganGenerator`, weight norm folded or
not), in the order its `forward` runs them.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from TTS.vocoder.models.hifigan_generator import HifiganGenerator, ResBlock1

_SLOPE = 0.1
"""`LRELU_SLOPE` of coqui-tts' HiFi-GAN (its last activation uses PyTorch's default)."""


def _nothing(like: torch.Tensor, channels: int) -> torch.Tensor:
    return like.new_zeros((like.shape[0], channels, 0))


def _kept(tail: torch.Tensor) -> torch.Tensor:
    """A tail held until the next piece, in memory of its own: a view would keep the whole
    piece's activations alive (hundreds of MB a sentence at the last stages)."""
    return tail.clone()


class _Convolution:
    """A stride-1 `Conv1d` with zero "same" padding, fed in pieces."""

    def __init__(self, conv: nn.Conv1d) -> None:
        self._weight = conv.weight
        self._bias = conv.bias
        self._dilation = int(conv.dilation[0])
        self._padding = int(conv.padding[0])
        reach = self._dilation * (int(conv.kernel_size[0]) - 1)
        if int(conv.stride[0]) != 1 or reach != 2 * self._padding:
            raise ValueError(f"not a stride-1 'same' convolution: {conv}")
        self._reach = reach  # inputs an output spans beyond its first
        self._held: torch.Tensor | None = None  # inputs the next outputs still need

    def push(self, inputs: torch.Tensor, final: bool) -> torch.Tensor:
        """New inputs (batch, channels, time); the outputs they complete."""
        if self._held is None:
            held = F.pad(inputs, (self._padding, 0))  # the zeros before the first input
        else:
            held = torch.cat((self._held, inputs), dim=2)
        if final:
            held = F.pad(held, (0, self._padding))
        if held.shape[2] <= self._reach:
            self._held = held
            return _nothing(held, self._weight.shape[0])
        outputs = F.conv1d(held, self._weight, self._bias, dilation=self._dilation)
        self._held = _kept(held[:, :, held.shape[2] - self._reach :])
        return outputs


class _TransposedConvolution:
    """An upsampling `ConvTranspose1d` (stride u, padding (k - u) / 2), fed in pieces.

    Its uncropped output at n sums the inputs i with i·u ≤ n < i·u + k, so once T inputs have
    come, everything before T·u is complete: later inputs only add from there on.
    """

    def __init__(self, conv: nn.ConvTranspose1d) -> None:
        self._weight = conv.weight
        self._bias = conv.bias
        self._stride = int(conv.stride[0])
        self._kernel = int(conv.kernel_size[0])
        self._crop = int(conv.padding[0])
        if 2 * self._crop != self._kernel - self._stride or conv.output_padding[0]:
            raise ValueError(f"not an upsampling by exactly its stride: {conv}")
        self._held: torch.Tensor | None = None
        self._held_from = 0  # index of the first held input
        self._received = 0
        self._emitted = 0  # cropped outputs returned

    def push(self, inputs: torch.Tensor, final: bool) -> torch.Tensor:
        """New inputs (batch, channels, time); the outputs they complete."""
        held = inputs if self._held is None else torch.cat((self._held, inputs), dim=2)
        self._received += inputs.shape[2]
        end = self._received * self._stride - (0 if final else self._crop)
        if end <= self._emitted:
            self._held = held
            return _nothing(held, self._weight.shape[1])
        first = self._first_input(self._emitted)
        window = held[:, :, first - self._held_from :]
        uncropped = F.conv_transpose1d(window, self._weight, self._bias, stride=self._stride)
        offset = first * self._stride - self._crop  # cropped index of `uncropped`'s first
        outputs = uncropped[:, :, self._emitted - offset : end - offset]
        self._emitted = end
        keep_from = self._first_input(end)
        self._held = _kept(held[:, :, keep_from - self._held_from :])
        self._held_from = keep_from
        return outputs

    def _first_input(self, output: int) -> int:
        """The first input that adds to cropped output `output` (or to any later one)."""
        uncropped = output + self._crop
        return max(0, math.ceil((uncropped - self._kernel + 1) / self._stride))


class _ResidualUnit:
    """One of a residual block's units: x + conv2(lrelu(conv1(lrelu(x))))."""

    def __init__(self, first: nn.Conv1d, second: nn.Conv1d) -> None:
        self._first = _Convolution(first)
        self._second = _Convolution(second)
        self._skipped: torch.Tensor | None = None  # inputs whose branch output is not out yet

    def push(self, inputs: torch.Tensor, final: bool) -> torch.Tensor:
        branch = self._first.push(F.leaky_relu(inputs, _SLOPE), final)
        branch = self._second.push(F.leaky_relu(branch, _SLOPE), final)
        skipped = inputs if self._skipped is None else torch.cat((self._skipped, inputs), dim=2)
        done = branch.shape[2]
        self._skipped = _kept(skipped[:, :, done:])
        return branch + skipped[:, :, :done]


class _MultiReceptiveField:
    """The mean of one upsampling stage's residual blocks (each a chain of units), whose
    outputs come out at different lags: each is held until all have reached it."""

    def __init__(self, blocks: list[ResBlock1]) -> None:
        self._blocks = [
            [_ResidualUnit(c1, c2) for c1, c2 in zip(block.convs1, block.convs2, strict=True)]
            for block in blocks
        ]
        self._waiting: list[torch.Tensor | None] = [None] * len(blocks)

    def push(self, inputs: torch.Tensor, final: bool) -> torch.Tensor:
        outputs = []
        for index, units in enumerate(self._blocks):
            output = inputs
            for unit in units:
                output = unit.push(output, final)
            waiting = self._waiting[index]
            outputs.append(output if waiting is None else torch.cat((waiting, output), dim=2))
        done = min(output.shape[2] for output in outputs)
        # Summed in the generator's order, then divided: the same float results.
        total = outputs[0][:, :, :done]
        for output in outputs[1:]:
            total = total + output[:, :, :done]
        self._waiting = [_kept(output[:, :, done:]) for output in outputs]
        return total / len(self._blocks)


class StreamingHifigan:
    """One sentence's waveform decoding: frames in, in pieces; the audio they complete out.

    `generator` is coqui-tts' `HifiganGenerator` with residual blocks of type 1 (XTTS-v2's).
    Its weights' dtype is the one it computes in (fp32, or bf16 for `--decoder-precision`);
    frames and audio are float32.
    """

    def __init__(self, generator: HifiganGenerator, speaker: torch.Tensor) -> None:
        if hasattr(generator, "lin_pre") or not all(
            isinstance(block, ResBlock1) for block in generator.resblocks
        ):
            raise ValueError(
                "This HiFi-GAN decoder cannot stream: it takes residual blocks of type 1 and "
                "no input projection, as XTTS-v2's"
            )
        self._dtype = generator.conv_pre.weight.dtype
        speaker = speaker.to(self._dtype)
        self._pre = _Convolution(generator.conv_pre)
        self._pre_condition = (
            generator.cond_layer(speaker) if hasattr(generator, "cond_layer") else None
        )
        kernels = generator.num_kernels
        self._stages = [
            (
                _TransposedConvolution(up),
                generator.conds[index](speaker) if generator.cond_in_each_up_layer else None,
                _MultiReceptiveField(
                    list(generator.resblocks[index * kernels : (index + 1) * kernels])
                ),
            )
            for index, up in enumerate(generator.ups)
        ]
        self._post = _Convolution(generator.conv_post)

    def push(self, frames: torch.Tensor, final: bool = False) -> torch.Tensor:
        """New decoder input frames (1, channels, time), possibly none; with `final`, the end
        of the sentence. Returns the audio samples they complete, float32, (samples,)."""
        signal = self._pre.push(frames.to(self._dtype), final)
        if self._pre_condition is not None:
            signal = signal + self._pre_condition
        for upsample, condition, blocks in self._stages:
            signal = upsample.push(F.leaky_relu(signal, _SLOPE), final)
            if condition is not None:
                signal = signal + condition
            signal = blocks.push(signal, final)
        signal = self._post.push(F.leaky_relu(signal), final)
        return torch.tanh(signal).reshape(-1).float()
