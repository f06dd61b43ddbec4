"""Anthropic adapter: the LanguageModel port over the anthropic SDK, and image preparation."""
from .images import MAX_IMAGES, MAX_SIDE_PX, prepare_images
from .provider import TASKS, AnthropicLanguageModel

__all__ = ["AnthropicLanguageModel", "TASKS", "prepare_images", "MAX_IMAGES", "MAX_SIDE_PX"]
