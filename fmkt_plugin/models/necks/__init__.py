"""Necks of FM-KT."""
from .flow_fpn import FlowFPN
from .flow_matching_neck import FlowMatchingNeck

__all__ = ['FlowMatchingNeck', 'FlowFPN']
