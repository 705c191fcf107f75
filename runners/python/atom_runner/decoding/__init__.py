"""The decode loop, written once: prefill, step, greedy, beam. Every backend drives it."""

from atom_runner.decoding.beam import beam_search
from atom_runner.decoding.greedy import greedy
from atom_runner.decoding.prefill import prefill, prompt_room
from atom_runner.decoding.stepper import DecoderStepper, trim_after_eos

__all__ = ["DecoderStepper", "beam_search", "greedy", "prefill", "prompt_room", "trim_after_eos"]
