"""Early, named checks shared by the FM-KT algorithms."""
from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn

# the checkpoint loader lives in utils (the tools and the converter use it too); its helpers
# stay importable from here
from ...utils.checkpoint import (
    check_finite_weights,
    checkpoint_load_error,
    checkpoint_state_dict,
    load_checkpoint,
)

__all__ = ['load_teacher_checkpoint', 'check_finite_losses', 'checkpoint_state_dict',
           'checkpoint_load_error', 'check_finite_weights', 'BatchChecker',
           'has_pretrained_init']


def load_teacher_checkpoint(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into ``teacher`` strictly, naming the file in every failure.

    MMRazor loads the teacher with ``strict=False``, so a checkpoint of another architecture
    only logs a warning and the student is distilled from a random teacher. Here a missing or
    unexpected key is an error, and so are NaN/inf weights: they give NaN targets, and the run
    would stop at its first step with a "non-finite loss" that points at the inputs and the lr,
    not at this file.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    ckpt = load_checkpoint(path, 'teacher_ckpt', finite="the teacher's weights")
    state = checkpoint_state_dict(ckpt, path, 'teacher_ckpt')
    try:
        _load_checkpoint_to_model(teacher, state, strict=True)
    except RuntimeError as err:
        raise RuntimeError(
            f'teacher_ckpt: {path} does not match the teacher architecture '
            f'(missing or unexpected keys):\n{err}') from err


def check_finite_losses(log_vars: Dict[str, Union[torch.Tensor, float]],
                        loss: torch.Tensor) -> None:
    """Raise before the optimizer steps when the total or any logged loss is NaN/inf.

    One check on the device and a single host sync per call: the losses are stacked and tested
    together; only when that fails are they read one by one to name the bad ones.
    """
    names = [k for k in log_vars if 'loss' in k]
    device = loss.device if torch.is_tensor(loss) else None
    values = [torch.as_tensor(loss, device=device).detach().float().reshape(-1)]
    values += [torch.as_tensor(log_vars[k], device=device).detach().float().reshape(-1)
               for k in names]
    if torch.isfinite(torch.cat(values)).all().item():
        return
    bad = {k: v for k, v in zip(names, values[1:]) if not torch.isfinite(v).all()}
    detail = ', '.join(f'{k}={_show(v)}' for k, v in bad.items()) or f'loss={_show(values[0])}'
    raise FloatingPointError(
        f'non-finite loss ({detail}); the optimizer was not stepped. Check the inputs '
        '(NaN/inf pixels), the learning rate and the loss weights.')


def _show(value: torch.Tensor) -> str:
    return str(value.item()) if value.numel() == 1 else str(value.tolist())


def _first_conv_in_channels(model: nn.Module) -> Optional[int]:
    """Input channels of the first 2-d convolution, in registration order (the stem)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def _num_classes(model: nn.Module) -> Tuple[Optional[int], str]:
    """Classes of a classifier head or a detector's box head, with the head's field name."""
    for field in ('head', 'bbox_head', 'roi_head.bbox_head'):
        module = model
        for part in field.split('.'):
            module = getattr(module, part, None)
        value = getattr(module, 'num_classes', None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, f'model.architecture.{field}.num_classes'
    return None, ''


def _sample_labels(sample) -> Optional[torch.Tensor]:
    # plain attribute reads: ``'gt_label' in sample`` builds the element's key set, which cost
    # more than a small student's forward pass over a batch of 128
    label = getattr(sample, 'gt_label', None)  # mmpretrain DataSample
    if label is not None:
        return label
    instances = getattr(sample, 'gt_instances', None)
    return getattr(instances, 'labels', None)  # mmdet DetDataSample


class BatchChecker:
    """Checks a raw batch before the data preprocessor and the forward pass see it.

    Registered as a forward pre-hook on the algorithm's data preprocessor, so it runs on every
    path that feeds the model (``train_step``, ``val_step``, ``test_step``, and mmengine's DDP
    wrapper, which calls the preprocessor itself) and before any BatchNorm statistic moves:

    - a NaN/inf value in a floating-point input refuses the batch (``FloatingPointError``): in
      training nothing has changed yet; in evaluation the image is not given an arbitrary
      label. Integer images (as decoded from files) cannot hold NaN and are not scanned.
    - an input whose channel count differs from what the student's first convolution takes is
      a ``ValueError`` (the data preprocessor would otherwise broadcast a 1-channel batch
      against its 3-channel mean and feed a silently wrong image).
    - a label outside ``[0, num_classes)`` is a ``ValueError`` naming the sample.

    The raw batch usually lives on the CPU, so the checks cost no device synchronisation; a
    batch already on a device costs one.

    Args:
        student: the student model (its first convolution and its head are read).
    """

    def __init__(self, student: nn.Module) -> None:
        self.channels = _first_conv_in_channels(student)
        self.num_classes, self.classes_field = _num_classes(student)

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        data = args[0] if args else kwargs.get('data')
        training = args[1] if len(args) > 1 else kwargs.get('training', False)
        if isinstance(data, dict):
            self.check(data.get('inputs'), data.get('data_samples'), bool(training))

    def check(self, inputs, data_samples, training: bool) -> None:
        """Raise on a bad batch; see the class docstring.

        Shapes are read without touching the data; the value checks (finite inputs, labels in
        range) are combined into one flag and read with a single host sync, and the culprits
        are looked for only when that flag is false.
        """
        if torch.is_tensor(inputs) and inputs.dim() == 4:
            images = list(inputs[:1])  # a stacked batch: every sample has the first's shape
        else:
            images = list(inputs) if isinstance(inputs, (list, tuple)) else []
        for index, image in enumerate(images):
            if not torch.is_tensor(image) or image.dim() != 3:
                continue
            if self.channels is not None and image.shape[0] != self.channels:
                raise ValueError(
                    f'inputs: sample {index} has {image.shape[0]} channels (shape '
                    f'{tuple(image.shape)}), the student\'s first convolution takes '
                    f'{self.channels}')
        if torch.is_tensor(inputs) and inputs.is_floating_point():
            floats = {None: inputs}
        else:
            floats = {i: image for i, image in enumerate(images)
                      if torch.is_tensor(image) and image.is_floating_point()}
        labels = {}
        if self.num_classes is not None:
            for index, sample in enumerate(data_samples or []):
                value = _sample_labels(sample)
                if isinstance(value, torch.Tensor) and value.numel():
                    labels[index] = value if value.dim() == 1 else value.reshape(-1)
        flags = [torch.isfinite(t).all() for t in floats.values()]
        if labels:
            every = torch.cat(list(labels.values()))
            flags.append(((every >= 0) & (every < self.num_classes)).all())
        if not flags:
            return
        device = flags[0].device
        if torch.stack([f.to(device) for f in flags]).all().item():
            return
        self._raise(floats, labels, training)

    def _raise(self, floats: dict, labels: dict, training: bool) -> None:
        if None in floats:  # a stacked batch
            bad = torch.nonzero(~torch.isfinite(floats[None].flatten(1)).all(1)).flatten()
            bad = bad.tolist()
        else:
            bad = [i for i, image in floats.items() if not bool(torch.isfinite(image).all())]
        if bad:
            if training:
                raise FloatingPointError(
                    f'inputs: NaN/inf values in sample(s) {bad} of the batch; the batch was '
                    'refused before the forward pass, so nothing was changed (BatchNorm '
                    'statistics included) and the optimizer was not stepped')
            raise FloatingPointError(
                f'inputs: NaN/inf values in sample(s) {bad} of the batch; refusing to predict '
                '(a non-finite image would get an arbitrary label)')
        for index, value in labels.items():
            low, high = int(value.min()), int(value.max())
            if low < 0 or high >= self.num_classes:
                raise ValueError(
                    f'data_samples[{index}]: label {low if low < 0 else high} is outside '
                    f'[0, {self.num_classes}) ({self.classes_field} = {self.num_classes})')


def has_pretrained_init(module: nn.Module) -> bool:
    """Whether ``module`` itself has an ``init_cfg`` of type ``Pretrained`` with a checkpoint.

    Only the module's own ``init_cfg`` counts: a detector whose backbone starts from ImageNet
    weights (mmdet's configs) still has a random neck and head, so it is no trained teacher.
    """
    cfgs = getattr(module, 'init_cfg', None)
    for cfg in cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' and cfg.get('checkpoint'):
            return True
    return False
