"""Detection benchmark: RetinaNet teacher/student pairs on scenes of Fashion-MNIST garments,
scored with mmdet's ``CocoMetric`` (student alone, PKD, FM-KT (FPN), exported FM-KT student)."""
