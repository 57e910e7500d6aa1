"""The loss terms: pure functions of tensors, one module per term, and the pieces they share."""

from fds.objectives.attributes import AttributeSpec

__all__ = ["AttributeSpec"]
