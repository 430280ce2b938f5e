"""Applying a trained editor to a new track, one module per learner; no Ray here.

* ``rl.py``: the RL checkpoint (``editorbot train rl``): load the plain-PyTorch policy, build
  the track table as training did, run the policy greedily (or sampled), render the edit.
* ``supervised.py``: the supervised baseline (``editorbot train supervised``): the beat label
  head's most likely decision list, and Griffin-Lim resynthesis of the predicted mel.

``editorbot edit`` (``editorbot.commands.edit``) reads a checkpoint's kind and calls one of them.
"""
