"""kb revision metadata: a revision records category, visibility and tags, not only the text

Four columns on kb_article_revisions, so that the history shows every change an editor can
make and "load revision N into the editor" restores all of it:
- category_id (FK kb_categories, SET NULL when the category is deleted) and category_name, the
  category's name when the revision was saved, so the history still reads after a rename or a
  deletion;
- visibility (not null) and tags (a JSON list of the normalized tags, sorted).

Backfill: until this revision, nothing recorded what an article's category, visibility and
tags were when an older revision was saved. Every existing revision is given its ARTICLE'S
CURRENT category (with its current name), visibility and tags. The history therefore shows no
such change between revisions saved before this migration; changes made from now on are
recorded as they happen.

Revision ID: 0008_kb_revision_metadata
Revises: 0007_ticket_business_durations
Create Date: 2026-12-09 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic (alembic_version holds at most 32 characters).
revision = '0008_kb_revision_metadata'
down_revision = '0007_ticket_business_durations'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
VISIBILITY = sa.Enum(
    'public', 'customers', 'internal', name='articlevisibility', native_enum=False, length=20
)


def upgrade():
    with op.batch_alter_table('kb_article_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('category_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('visibility', VISIBILITY, nullable=True))
        batch_op.add_column(sa.Column('tags', JSON, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_kb_article_revisions_category_id_kb_categories'),
            'kb_categories', ['category_id'], ['id'], ondelete='SET NULL',
        )

    _backfill_from_articles()

    with op.batch_alter_table('kb_article_revisions', schema=None) as batch_op:
        batch_op.alter_column('visibility', existing_type=VISIBILITY, nullable=False)
        batch_op.alter_column('tags', existing_type=JSON, nullable=False)


def _backfill_from_articles():
    """Each revision gets its article's current category, visibility and tags (see above).
    Done row by row in Python: the same statements on SQLite and PostgreSQL, and the JSON
    list bound by SQLAlchemy's JSON type rather than built by dialect-specific SQL."""
    conn = op.get_bind()
    categories = sa.table('kb_categories', sa.column('id', sa.Integer), sa.column('name', sa.String))
    articles = sa.table(
        'kb_articles',
        sa.column('id', sa.Integer),
        sa.column('category_id', sa.Integer),
        sa.column('visibility', sa.String),
    )
    article_tags = sa.table('kb_article_tags', sa.column('article_id', sa.Integer), sa.column('tag', sa.String))
    revisions = sa.table(
        'kb_article_revisions',
        sa.column('article_id', sa.Integer),
        sa.column('category_id', sa.Integer),
        sa.column('category_name', sa.String),
        sa.column('visibility', sa.String),
        sa.column('tags', JSON),
    )
    names = dict(conn.execute(sa.select(categories.c.id, categories.c.name)).all())
    tags = {}
    for article_id, tag in conn.execute(
        sa.select(article_tags.c.article_id, article_tags.c.tag).order_by(article_tags.c.tag)
    ):
        tags.setdefault(article_id, []).append(tag)
    rows = [
        {
            'a_id': article_id,
            'category_id': category_id,
            'category_name': names.get(category_id),
            'visibility': visibility,
            'tags': tags.get(article_id, []),
        }
        for article_id, category_id, visibility in conn.execute(
            sa.select(articles.c.id, articles.c.category_id, articles.c.visibility)
        )
    ]
    if rows:
        conn.execute(
            revisions.update()
            .where(revisions.c.article_id == sa.bindparam('a_id'))
            .values(
                category_id=sa.bindparam('category_id'),
                category_name=sa.bindparam('category_name'),
                visibility=sa.bindparam('visibility'),
                tags=sa.bindparam('tags', type_=JSON),
            ),
            rows,
        )


def downgrade():
    with op.batch_alter_table('kb_article_revisions', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_kb_article_revisions_category_id_kb_categories'), type_='foreignkey'
        )
        batch_op.drop_column('tags')
        batch_op.drop_column('visibility')
        batch_op.drop_column('category_name')
        batch_op.drop_column('category_id')
