"""Domain errors: each names a rule of the payments domain that a request or event broke."""


class PaymentsError(Exception):
    pass


class InvalidPlan(PaymentsError):
    """An order's schedule cannot be turned into a plan that adds up."""


class IllegalTransition(PaymentsError):
    """A payment cannot move to that state from where it is."""
