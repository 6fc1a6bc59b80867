# The flow of logit-level FM-KT: rectified flow, a one-block MLP meta-encoder, N = 8 serial Euler
# steps in training and at test. Switch the schedule with
# --cfg-options model.architecture.head.flow.schedule.type=VPSchedule (or VESchedule), the
# inference steps with ...head.flow.test_num_steps=4, and the teacher estimate with
# ...head.flow.estimate=displacement (the FM-KT authors' form, z_s - v for rectified flow).
flow = dict(
    type='FlowMatchingConnector',
    schedule=dict(type='RectifiedFlowSchedule'),
    meta_encoder=dict(type='MLPMetaEncoder', num_blocks=1),
    num_steps=8,
    test_num_steps=8,
    estimate='interpolant')
