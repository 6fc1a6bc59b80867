# The ResNet-18 student of the ImageNet-1k pairs (R-34 -> R-18, R-50 -> R-18) and of OFM-KT:
# mmpretrain's ImageClassifier, written out (not cfg_path) so that methods can swap its head or
# neck by merging, e.g. model.architecture.head=dict(_delete_=True, type='FlowMatchingClsHead').
norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
model = dict(
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=True, num_classes=1000, **norm),
        backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ), style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=512,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))))
