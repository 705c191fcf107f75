"""The decode loop, written once: prefill, step, greedy, beam. Every backend drives it."""

from atom_runner.decoding.beam import beam_search, beam_search_groups
from atom_runner.decoding.greedy import greedy, greedy_rows
from atom_runner.decoding.prefill import prefill, prompt_room
from atom_runner.decoding.stepper import DecoderStepper, trim_after_eos

__all__ = ["DecoderStepper", "beam_search", "beam_search_groups", "greedy", "greedy_rows", "prefill", "prompt_room", "trim_after_eos"]
