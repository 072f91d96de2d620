"""Domain errors. Each names what went wrong in words a caller can act on."""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(Exception):
    """Base of every rule violation the domain reports."""

    code: str = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownPackage(DomainError):
    code = "unknown_package"

    def __init__(self, package_code: str) -> None:
        super().__init__(f"there is no care package {package_code!r}")
        self.package_code = package_code


class UnknownAddOn(DomainError):
    code = "unknown_add_on"

    def __init__(self, add_on_code: str) -> None:
        super().__init__(f"there is no add-on {add_on_code!r}")
        self.add_on_code = add_on_code


class StudentCountOutOfRange(DomainError):
    """The chosen package does not cover the school's size; says which one does."""

    code = "student_count_out_of_range"

    def __init__(self, package_code: str, student_count: int, range_text: str, fitting_package: str | None) -> None:
        if fitting_package is None:
            hint = "no care package covers that many students"
        else:
            hint = f"the {fitting_package} package fits {student_count} students"
        super().__init__(
            f"{student_count} students is outside the {package_code} package's range ({range_text}); {hint}"
        )
        self.package_code = package_code
        self.student_count = student_count
        self.fitting_package = fitting_package


class NoPackageFits(DomainError):
    code = "no_package_fits"

    def __init__(self, student_count: int, smallest_min: int) -> None:
        super().__init__(
            f"no care package is sold for {student_count} students; the smallest package starts at {smallest_min}"
        )
        self.student_count = student_count


class InvalidPaymentTerms(DomainError):
    code = "invalid_payment_terms"


class MissingExchangeRate(DomainError):
    code = "missing_exchange_rate"


class IllegalTransition(DomainError):
    """A status move the lifecycle does not allow; lists the moves that are allowed."""

    code = "illegal_transition"

    def __init__(self, from_status: str, to_status: str, allowed: Iterable[str]) -> None:
        self.from_status = from_status
        self.to_status = to_status
        self.allowed = sorted(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (the order is closed)"
        super().__init__(f"an order cannot move from {from_status} to {to_status}; allowed moves: {allowed_text}")


class GuardFailed(DomainError):
    """A move the lifecycle allows but whose precondition is not met yet."""

    code = "transition_guard_failed"

    def __init__(self, from_status: str, to_status: str, unmet: list[str]) -> None:
        self.from_status = from_status
        self.to_status = to_status
        self.unmet = unmet
        super().__init__(f"an order cannot move from {from_status} to {to_status} yet: " + "; ".join(unmet))


class OverrideNeedsReason(DomainError):
    code = "override_needs_reason"

    def __init__(self) -> None:
        super().__init__("an admin override must give a reason")


class MilestoneAlreadyCompleted(DomainError):
    code = "milestone_already_completed"
