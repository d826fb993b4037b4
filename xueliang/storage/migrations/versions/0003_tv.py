"""legal information and TV pairing

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "law_articles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.String(length=300), server_default="", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("law", sa.String(length=300), server_default="", nullable=False),
        sa.Column("in_force", sa.Date(), nullable=False),
        sa.Column("reviewed", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lang IN ('zh_CN', 'en')", name=op.f("ck_law_articles_lang")),
        sa.PrimaryKeyConstraint("id", "lang", name=op.f("pk_law_articles")),
    )
    with op.batch_alter_table("law_articles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_law_articles_category"), ["category"], unique=False)

    op.create_table(
        "tv_pairings",
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("box_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.Column("bound_by", sa.String(length=100), nullable=True),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_tv_pairings_household_id_households")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_tv_pairings")),
        sa.UniqueConstraint("box_hash", name=op.f("uq_tv_pairings_box_hash")),
    )


def downgrade() -> None:
    op.drop_table("tv_pairings")
    with op.batch_alter_table("law_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_law_articles_category"))

    op.drop_table("law_articles")
