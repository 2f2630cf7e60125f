"""A ROS-free, procedurally rendered RGB-D logistics cell (tote or conveyor with items).

Used for demos, tests and training the default model; see :class:`SyntheticCell`.
"""

from seg_perception.synthetic.cell import SyntheticCell
from seg_perception.synthetic.config import SyntheticConfig, SyntheticConfigError
from seg_perception.synthetic.frame import ItemTruth, SyntheticFrame

__all__ = ['ItemTruth', 'SyntheticCell', 'SyntheticConfig', 'SyntheticConfigError',
           'SyntheticFrame']
