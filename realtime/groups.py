"""Channel-layer group names: built here and nowhere else."""


def number_group(number_id: int) -> str:
    """Everyone allowed to see a business number's conversations listens on this group."""
    return f"number.{number_id}"


def user_group(user_id: int) -> str:
    """All of one staff member's open tabs (read-state sync across tabs)."""
    return f"user.{user_id}"
