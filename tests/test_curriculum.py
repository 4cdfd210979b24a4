import numpy as np
import pytest

from gemini_tf.data import shapes
from gemini_tf.data.curriculum import StagedGroups
from gemini_tf.data.sources import ShapesSource
from gemini_tf.training.loop import FitSettings
from gemini_tf.training.recipes import CURRICULUM, ListwiseRecipe


def _stage(word: str, count: int = 10) -> shapes.GroupSet:
    images = np.zeros((count, 64, 64, 3), np.uint8)
    return shapes.GroupSet(images, [[f"a {word} circle", "a green square"]] * count, [["positive", "colour"]] * count)


def test_stages_play_in_order_for_their_share_of_the_epochs(preprocessor):
    staged = StagedGroups([_stage("red"), _stage("blue"), _stage("yellow")], [0.4, 0.4, 0.2])
    assert staged.stage_epochs(5) == [2, 2, 1] and sum(staged.stage_epochs(7)) == 7
    assert staged.stage_epochs(2) == [2, 0, 0]  # too few epochs for the later stages: the first only
    batches = list(staged.dataset(preprocessor, (64, 64), epochs=5, batch_size=4))
    assert len(batches) == 5 * staged.steps_per_epoch(4) == 15
    first_words = [preprocessor.vocabulary[int(ids[0, 0, 2])] for (ids, _), _ in batches]
    assert first_words == ["red"] * 6 + ["blue"] * 6 + ["yellow"] * 3


def test_stages_are_checked():
    with pytest.raises(ValueError, match="as many groups"):
        StagedGroups([_stage("red", 10), _stage("blue", 8)], [0.5, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        StagedGroups([_stage("red"), _stage("blue")], [0.5, 0.6])


def test_listwise_recipe_stages_shapes_training_groups_only():
    source = ShapesSource(scenes={"train": 40, "validation": 8})
    view = ListwiseRecipe().view(source, "train")
    assert isinstance(view, StagedGroups) and len(view.stages) == len(CURRICULUM) and len(view) == 40
    assert view.stages[0].texts != view.stages[1].texts  # the relation stage draws other scenes
    assert isinstance(ListwiseRecipe().view(source, "validation"), shapes.GroupSet)
    assert isinstance(ListwiseRecipe(curriculum=False).view(source, "train"), shapes.GroupSet)
    assert ListwiseRecipe().steps_per_epoch(view, FitSettings(batch_size=16)) == 3
