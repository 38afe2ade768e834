"""Extension objects, created once here and bound to an app by ``create_app``.

A leaf module: it imports no other part of AutoCRM, so anything may import it without cycles.
"""

from typing import TYPE_CHECKING

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints make Alembic migrations reviewable and portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The typed declarative base: ``Mapped[...]`` columns on the models type-check natively."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

# The models' base class. At run time it is ``db.Model``, which Flask-SQLAlchemy builds from
# ``Base`` plus its mixins (table name, bind key, the legacy ``Model.query``). A type checker
# cannot subclass an instance attribute, so it sees ``Base``: queries go through ``db.session``,
# and a model may name a column ``query`` (``KbSuggestionEvent`` does).
if TYPE_CHECKING:

    class Model(Base):
        __abstract__ = True

else:
    Model = db.Model

migrate = Migrate()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
