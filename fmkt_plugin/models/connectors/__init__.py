"""MMRazor connectors of FM-KT."""
from .diffkd_connector import DiffKDConnector, DiffKDOutput
from .flow_matching_connector import FlowMatchingConnector
from .teacher_projector import TeacherProjector

__all__ = ['FlowMatchingConnector', 'TeacherProjector', 'DiffKDConnector', 'DiffKDOutput']
