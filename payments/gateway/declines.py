"""Soft and hard processor declines.

A soft decline is temporary (insufficient funds, limits, a generic "do not honor"): the same
payment method may succeed later. A hard decline will not heal (expired, invalid, lost or
stolen card, fraud, a closed account): retrying it only hurts the merchant's standing.
Braintree reports the type itself (``processor_response_type``); where it is missing, the
code decides, following Braintree's table of authorization responses.
"""

from __future__ import annotations

from payments.vocabulary import DeclineType

# 2000-class codes Braintree marks "Hard"; every other 2000/3000-class code is soft.
HARD_DECLINE_CODES = frozenset(
    {
        "2004",  # Expired Card
        "2005",  # Invalid Credit Card Number
        "2006",  # Invalid Expiration Date
        "2007",  # No Account
        "2008",  # Card Account Length Error
        "2009",  # No Such Issuer
        "2010",  # Card Issuer Declined CVV
        "2011",  # Voice Authorization Required
        "2012",  # Possible Lost Card
        "2013",  # Possible Stolen Card
        "2014",  # Fraud Suspected
        "2015",  # Transaction Not Allowed
        "2017",  # Cardholder Stopped Billing
        "2018",  # Cardholder Stopped All Billing
        "2019",  # Invalid Transaction
        "2020",  # Violation
        "2021",  # Security Violation
        "2022",  # Declined - Updated Cardholder Available
        "2023",  # Processor Does Not Support This Feature
        "2024",  # Card Type Not Enabled
        "2027",  # Set Up Error - Amount
        "2028",  # Set Up Error - Hierarchy
        "2029",  # Set Up Error - Card
        "2030",  # Set Up Error - Terminal
        "2031",  # Encryption Error
        "2032",  # Surcharge Not Permitted
        "2033",  # Inconsistent Data
        "2036",  # Authorization could not be found
        "2037",  # Already Reversed
        "2039",  # Invalid Authorization Code
        "2041",  # Declined - Call For Approval
        "2043",  # Error - Do Not Retry, Call Issuer
        "2044",  # Declined - Call Issuer
        "2045",  # Invalid Merchant Number
        "2047",  # Call Issuer. Pick Up Card
        "2051",  # Credit Card Number does not match method of payment
        "2053",  # Card reported as lost or stolen
        "2063",  # PayPal business account preference
    }
)


def decline_type(
    processor_response_code: str | None, reported: str | None = None
) -> DeclineType | None:
    """Soft or hard for a processor decline; None when the code is not a decline."""
    if reported in ("soft_declined", "hard_declined"):
        return DeclineType.SOFT if reported == "soft_declined" else DeclineType.HARD
    if processor_response_code is None or not processor_response_code.isdigit():
        return None
    code = int(processor_response_code)
    if 2000 <= code < 4000:
        return (
            DeclineType.HARD if processor_response_code in HARD_DECLINE_CODES else DeclineType.SOFT
        )
    return None
