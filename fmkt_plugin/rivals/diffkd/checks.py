"""The one config check shared by the DiffKD modules that only the DiffKD modules need."""
from ...utils.validation import check_int

__all__ = ['check_kernel_size']


def check_kernel_size(value, owner: str) -> int:
    """``kernel_size`` of a DiffKD module: 3 (feature maps) or 1 (vectors such as logits).

    Args:
        value: the config value.
        owner: the component, named in the error.

    Returns:
        ``int(value)``.

    Raises:
        ValueError: for a non-integer or any value other than 1 and 3.
    """
    number = check_int(value, 'kernel_size', min_value=1, max_value=3, owner=owner)
    if number == 2:
        raise ValueError(f'{owner}: kernel_size must be 1 or 3, got {value!r}')
    return number
