"""Why a sensor message cannot be used: raised by every decoder in ``w2r2_ros.sensors``."""


class InvalidMessage(ValueError):
    """A message whose fields are inconsistent or unusable (sizes, steps, layout, values)."""


class UnsupportedEncoding(InvalidMessage):
    """An image encoding this package does not read."""
