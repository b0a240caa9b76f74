"""Migration from other gateways: translate their configs into an llmrelay config.

    from llmrelay.migrate import translate_litellm, render_yaml
    t = translate_litellm(yaml.safe_load(open("litellm-config.yaml")))
    print(render_yaml(t, "litellm-config.yaml"))   # the config, with what to review on top
    t.notes.untranslated                             # settings with no llmrelay equivalent
"""

from __future__ import annotations

from ._notes import Notes
from .litellm import Translation, render_yaml, translate_litellm

__all__ = ["Notes", "Translation", "render_yaml", "translate_litellm"]
