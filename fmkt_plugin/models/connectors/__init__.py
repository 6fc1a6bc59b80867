"""MMRazor connectors of FM-KT."""
from .flow_matching_connector import (
    ESTIMATES,
    MAX_STEPS,
    FlowMatchingConnector,
    FlowResult,
    build_flow,
    find_flows,
    flow_num_steps,
)
from .step_policy import StepCountPolicy
from .teacher_projector import TeacherProjector

__all__ = [
    'FlowMatchingConnector', 'FlowResult', 'TeacherProjector', 'ESTIMATES', 'MAX_STEPS',
    'build_flow', 'find_flows', 'flow_num_steps', 'StepCountPolicy'
]
