"""Reference rows: the pretrained student and teacher as they are, and the core.baselines models.

They are evaluated by the pipeline directly (no objective): `student` = the backbone at d=10 trained on all training
sessions (the model every distillation method starts from); `teacher` = the backbone at d=100 (the conventional
teacher recommender that proposes the LLM's candidates).
"""

from __future__ import annotations

from core import baselines
from core.distill import register

register("student", "reference", description="pretrained student (d=10), no distillation")(None)
register("teacher", "reference", description="teacher recommender (d=100), the upper reference")(None)
for _name in baselines.available():
    register(_name, "baseline", description=baselines.DESCRIPTIONS.get(_name, _name))(None)
