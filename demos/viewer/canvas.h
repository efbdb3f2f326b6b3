// The image canvas: layers of float or uint8 pixels shown through per-layer
// contrast limits, with zoom (wheel), pan (drag), fit (double-click) and an
// optional grid that shows every visible layer side by side.
#pragma once

#include "viewer_plugin.h"

#include <QImage>
#include <QTimer>
#include <QWidget>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

struct Layer {
    QString name;
    int width = 0, height = 0;
    viewer_pixel type = VIEWER_U8;
    std::vector<unsigned char> bytes;  // width * height pixels of `type`
    double lo = 0, hi = 255;           // contrast limits: lo black, hi white
    bool visible = true;
    quint64 version = 0;               // bumped by every pixel update

    void assign(const vimage *img);    // copies the pixels
    double value(int x, int y) const;
    std::pair<double, double> data_range() const;  // min, max (NaN skipped)
    const QImage &rendered();          // 8-bit gray, cached until data/limits change

private:
    QImage image_;
    quint64 image_version_ = ~0ull;
    double image_lo_ = 0, image_hi_ = 0;
};

class Canvas : public QWidget {
public:
    explicit Canvas(QWidget *parent = nullptr);

    // Layers, bottom to top (the list dock shows them top first).
    Layer *find(const QString &name) const;
    Layer *add(const QString &name);
    const std::vector<std::unique_ptr<Layer>> &layers() const { return layers_; }

    // Pixels or limits changed: repaint at display rate, not per update.
    void changed();
    void set_grid(bool on);
    bool grid() const { return grid_; }
    void fit();                        // back to "fit everything"
    int take_paint_count();            // paints since the last call

    std::function<void(const QString &)> on_hover;  // "layer [x, y] = value"

protected:
    void paintEvent(QPaintEvent *) override;
    void wheelEvent(QWheelEvent *e) override;
    void mousePressEvent(QMouseEvent *e) override;
    void mouseMoveEvent(QMouseEvent *e) override;
    void mouseDoubleClickEvent(QMouseEvent *e) override;
    void resizeEvent(QResizeEvent *e) override;

private:
    struct Cell { Layer *layer; QRectF rect; };  // rect in scene pixels
    std::vector<Cell> layout() const;
    QRectF bounds(const std::vector<Cell> &cells) const;
    QPointF to_scene(QPointF widget_pos) const;
    void hover(QPointF widget_pos);

    std::vector<std::unique_ptr<Layer>> layers_;
    bool grid_ = true;
    bool auto_fit_ = true;             // until the user zooms or pans
    double scale_ = 1;                 // widget pixels per scene pixel
    QPointF offset_;                   // widget position of scene (0, 0)
    QPointF drag_from_;
    QTimer repaint_;
    QImage frame_;                     // composed here, then blitted
    int paints_ = 0;
};
