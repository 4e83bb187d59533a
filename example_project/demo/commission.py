"""The demo platform's commission (PAPAY["COMMISSION"]): 10 % of each profit-sharing sub-order, to itself."""

from django.conf import settings


def platform_commission(sub_order):
    """One receiver, the platform's own merchant id: 10 % of the sub-order, in fen (¥1.50 of ¥15.00)."""
    return [
        {
            "type": "MERCHANT_ID",
            "account": settings.PAPAY["MCHID"],
            "amount": sub_order.amount // 10,
            "description": "平台佣金 commission",
        }
    ]
