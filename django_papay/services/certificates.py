"""WeChat Pay platform certificates (平台证书): downloaded by one worker, stored for all of them; ``StoredKeys``, the
API client's key source that downloads them when due (reading the stored ones is ``certificate_store.py``).

With ``PAPAY["PLATFORM_CERTIFICATES"] = True`` the answers and notifications WeChat Pay signs with a
platform certificate verify against the certificates stored in ``PlatformCertificate``, next to the
WeChat Pay public key when one is configured (both at once during WeChat Pay's move to the public key).

When the set is downloaded again (``refresh_certificates``):
- an answer to one of our own requests names a serial we do not have (a rotation), or
- the stored set is older than ``CERTIFICATE_REFRESH_INTERVAL`` when an answer is checked, or
- someone runs ``manage.py papay_certificates --download`` (cron).
Never for a notification: an unknown serial there is refused without any outbound call, or anyone on
the internet could make us call WeChat Pay. Downloads take turns across processes through the
``CertificateRefresh`` row and happen at most once per ``MIN_REFRESH_INTERVAL``.

Trust decision for the download (also in docs/settings.md, "Keys and certificates"): the certificate list is
signed by a platform certificate, possibly one it carries itself, so on the first download no key we
already hold can verify it. We accept a listed certificate because it opens with our APIv3 key:
AEAD_AES_256_GCM authenticates, and only WeChat Pay and the merchant know that key. Its X.509 serial must
be the listed ``serial_no`` and it must not have expired. The answer's signature must then verify with a
key we trust: the configured public key, a stored certificate, or a certificate from this very answer
that opened with the APIv3 key. We do not check a chain to Tenpay's CA, as WeChat Pay's own SDKs do not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import conf, crypto, wechatpay
from ..client import ConfiguredKeys, KeyStore, RawAnswer, WeChatPayClient
from ..exceptions import InvalidResponseError, NoPlatformCertificates, WeChatPayError
from ..models import CertificateRefresh, PlatformCertificate
from ..stored_messages import error_columns
from . import ratelimit
from .certificate_store import cached_public_key, certificate_key, certificate_keys, forget_stored_certificates
from .turns import in_turn

logger = logging.getLogger("django_papay.certificates")

# At most one download per minute across all processes, whatever asks for it.
MIN_REFRESH_INTERVAL = timedelta(seconds=60)
# After a failed download, a due refresh waits this long before it tries again.
RETRY_AFTER_FAILURE = timedelta(minutes=10)
_STATE = 1  # primary key of the CertificateRefresh row


@dataclass(frozen=True)
class Refresh:
    """What a refresh did: ``downloaded`` False when another refresh ran within MIN_REFRESH_INTERVAL."""

    downloaded: bool
    serials: tuple[str, ...] = ()  # the certificates WeChat Pay listed and we accepted
    added: tuple[str, ...] = ()  # those of them we did not have before


class StoredKeys(KeyStore):
    """The configured public key, and with PLATFORM_CERTIFICATES the valid stored certificates.

    ``may_download``: the store of the API client, which refreshes the certificates when an answer
    names an unknown serial or the set is due. Without it, a lookup only. Either way it reads the
    database, so it belongs to the thread that owns the connection; ``snapshot`` is for other threads.
    """

    def __init__(self, config: conf.ClientSettings, *, may_download: bool = False) -> None:
        self.public_keys = dict(config.wechatpay_public_keys)
        self.certificates = config.platform_certificates
        self.may_download = may_download and config.platform_certificates

    def key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        # Due or not, whichever key the answer names: answers may all be signed with the public key
        # while notifications still come signed with certificates. One primary-key read when not due.
        if self.may_download:
            self._refresh(refresh_if_due)
        key = self.public_keys.get(serial)
        if key is not None or not self.certificates:
            return key
        return certificate_key(serial)

    def on_unknown_serial(self, serial: str) -> bool:
        if not self.may_download:
            return False
        logger.info("an answer is signed with unknown serial %s; refreshing the platform certificates", serial)
        return self._refresh(refresh_certificates)

    def serials(self) -> list[str]:
        """The public key's id and the valid stored certificates' serials: a lookup, never a download."""
        stored = sorted(certificate_keys()) if self.certificates else []
        return sorted(self.public_keys) + stored

    def snapshot(self) -> KeyStore:
        """The keys as of now, in memory (a refresh that is due runs first, in this thread)."""
        if self.may_download:
            self._refresh(refresh_if_due)
        return ConfiguredKeys({**self.public_keys, **(certificate_keys() if self.certificates else {})})

    @staticmethod
    def _refresh(refresh: Callable[[], Refresh | None]) -> bool:
        try:
            return refresh() is not None
        except WeChatPayError as exc:  # the answer being checked is then refused as unknown, and says so
            logger.warning("platform certificates not refreshed: %s", exc)
            return False


def refresh_if_due() -> Refresh | None:
    """Refresh when the last success is older than CERTIFICATE_REFRESH_INTERVAL; None when not due."""
    state = CertificateRefresh.objects.filter(pk=_STATE).first()
    now = timezone.now()
    if state is not None:
        fresh = state.succeeded_at and now - state.succeeded_at < timedelta(seconds=conf.certificate_refresh_interval())
        failed_lately = state.attempted_at and state.last_error and now - state.attempted_at < RETRY_AFTER_FAILURE
        if fresh or failed_lately:
            return None
    return refresh_certificates()


def refresh_certificates(*, force: bool = False) -> Refresh:
    """Download, check and store the platform certificates, one process at a time.

    Waits while another process refreshes, then returns ``Refresh(downloaded=False)`` if that one ran
    within MIN_REFRESH_INTERVAL (``force`` downloads anyway, still in turn). Raises NoPlatformCertificates
    for a public-key-only merchant, WeChatPayError when the download fails (recorded on the refresh row).
    """
    config = conf.client_settings()
    # A client of its own, whose keys are a lookup only: a download never starts another download.
    client = WeChatPayClient(config, keys=StoredKeys(config))
    connect, read = config.timeout
    # The download's place under MAX_CALLS_PER_SECOND, taken before the claim's transaction: taken inside it,
    # the second's CallWindow row would stay locked for the whole download. Lost if another process just refreshed.
    ratelimit.take_places(1)
    try:
        # The download runs inside the claim's transaction: another process waits its whole length.
        return in_turn(lambda: _refresh(client, force), seconds=2 * (connect + read) + 10)
    finally:
        client.session.close()


def _refresh(client: WeChatPayClient, force: bool) -> Refresh:
    CertificateRefresh.objects.get_or_create(pk=_STATE)
    failure: WeChatPayError | None = None
    with transaction.atomic():
        # The claim is the transaction's first statement, a write: PostgreSQL holds every other
        # claimant on the row lock, SQLite on its write lock, until this transaction ends. The
        # condition (re-checked on the row as committed) turns them away if we just downloaded.
        now = timezone.now()
        claim = CertificateRefresh.objects.filter(pk=_STATE)
        if not force:
            claim = claim.filter(Q(attempted_at__isnull=True) | Q(attempted_at__lte=now - MIN_REFRESH_INTERVAL))
        if not claim.update(attempted_at=now):
            logger.info("platform certificates were refreshed by another process just now")
            return Refresh(downloaded=False)
        try:
            answer, listed = _download(client)
        except WeChatPayError as exc:
            failure = exc
            CertificateRefresh.objects.filter(pk=_STATE).update(**error_columns(exc))
        else:
            added = _store(listed, source=answer.url)
            CertificateRefresh.objects.filter(pk=_STATE).update(succeeded_at=timezone.now(), **error_columns(""))
    if failure is not None:
        raise failure
    logger.info("platform certificates downloaded: %s (new: %s)", ", ".join(listed) or "-", ", ".join(added) or "-")
    return Refresh(downloaded=True, serials=tuple(listed), added=tuple(added))


@dataclass(frozen=True)
class _Listed:
    pem: str
    effective_time: datetime
    expire_time: datetime
    public_key: rsa.RSAPublicKey


class _WithListed(KeyStore):
    """Our lookup keys plus the certificates of the answer being checked (see the trust decision)."""

    def __init__(self, lookup: KeyStore, listed: dict[str, _Listed]) -> None:
        self.lookup, self.listed = lookup, listed

    def key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        return self.lookup.key_for(serial) or (self.listed[serial].public_key if serial in self.listed else None)


def _download(client: WeChatPayClient) -> tuple[RawAnswer, dict[str, _Listed]]:
    try:
        answer = client.send("GET", wechatpay.CERTIFICATES_PATH)
    except WeChatPayError as exc:
        if exc.code == wechatpay.RESOURCE_NOT_EXISTS:
            raise NoPlatformCertificates(
                f"WeChat Pay has no platform certificates for merchant {client.config.mchid}: it uses the WeChat "
                'Pay public key. Set PAPAY["WECHATPAY_PUBLIC_KEY_ID"] and PAPAY["WECHATPAY_PUBLIC_KEY_PATH"], and '
                'leave PAPAY["PLATFORM_CERTIFICATES"] off',
                code=exc.code,
                status=exc.status,
                detail=exc.detail,
                request_id=exc.request_id,
                retryable=False,
            ) from exc
        raise
    listed = _open_listing(answer, client.config.mchid)
    client.check_signature(answer, _WithListed(client.keys, listed))
    return answer, listed


def _open_listing(answer: RawAnswer, mchid: str) -> dict[str, _Listed]:
    try:
        items = json.loads(answer.body).get("data")
    except (ValueError, AttributeError):
        items = None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidResponseError(
            'the certificate list is not {"data": [...]}',
            code="INVALID_RESPONSE_BODY",
            status=answer.status,
            request_id=answer.request_id,
        )
    listed: dict[str, _Listed] = {}
    now = timezone.now()
    for item in items:
        serial, sealed = str(item.get("serial_no") or ""), item.get("encrypt_certificate") or {}
        try:
            pem = crypto.decrypt(
                conf.apiv3_key(),
                sealed.get("nonce", ""),
                sealed.get("ciphertext", ""),
                sealed.get("associated_data", ""),
            ).decode("utf-8")
            certificate = crypto.load_certificate(pem)
        except (crypto.DecryptionError, crypto.KeyLoadError, UnicodeDecodeError, AttributeError) as exc:
            raise WeChatPayError(
                f'platform certificate {serial or "?"} does not open with PAPAY["APIV3_KEY"] ({exc}); '
                "check the APIv3 key",
                code="CERTIFICATE_DECRYPT_ERROR",
                status=answer.status,
                request_id=answer.request_id,
                retryable=False,
            ) from exc
        not_before, not_after = crypto.certificate_validity(certificate)
        if not crypto.serial_no_matches(serial, certificate):
            logger.warning(
                "platform certificate listed as %r carries serial %s; ignored",
                serial,
                crypto.certificate_serial_no(certificate),
            )
        elif not_after <= now:
            logger.warning("platform certificate %s expired at %s; ignored", serial, not_after)
        else:
            listed[serial] = _Listed(pem, not_before, not_after, cached_public_key(pem))
    if not listed:
        raise NoPlatformCertificates(
            f"WeChat Pay listed no valid platform certificate for merchant {mchid}",
            code="NO_VALID_CERTIFICATE",
            status=answer.status,
            request_id=answer.request_id,
            retryable=False,
        )
    return listed


def _store(listed: dict[str, _Listed], *, source: str) -> list[str]:
    known = set(PlatformCertificate.objects.filter(serial_no__in=listed).values_list("serial_no", flat=True))
    for serial, certificate in listed.items():
        PlatformCertificate.objects.update_or_create(
            serial_no=serial,
            defaults={
                "pem": certificate.pem,
                "effective_time": certificate.effective_time,
                "expire_time": certificate.expire_time,
                "fetched_at": timezone.now(),
                "source": source,
            },
        )
    forget_stored_certificates()  # a transaction's rollback sends no signal; the next read is fresh anyway
    return [serial for serial in listed if serial not in known]
