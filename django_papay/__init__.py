"""django-papay: WeChat Pay 合单代扣 (combine-papay) contract signing for Django."""

__version__ = "0.1.0"
